with

validated as (

    select * from {{ ref('int_customers_validated') }}

),

final as (

    select
        source_row_number,
        customer_id,
        quarantine_reason,
        source_id,
        source_gender,
        source_ever_married,
        source_age,
        source_graduated,
        source_profession,
        source_work_experience,
        source_spending_score,
        source_family_size,
        source_var_1,
        source_line_number,
        source_line

    from validated
    where quarantine_reason is not null

)

select * from final
