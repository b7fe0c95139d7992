with

customers as (

    select * from {{ ref('int_customers_imputed') }}

),

final as (

    select
        customer_id,
        gender,
        ever_married as is_married,
        age,
        graduated as has_degree,
        profession,
        work_experience,
        spending_score,
        spending_level,
        family_size,
        var_1,
        records_merged,
        known_segment

    from customers

)

select * from final
